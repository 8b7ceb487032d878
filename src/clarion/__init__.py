"""Clarion: a self-hosted push notification service that respects the recipient."""
