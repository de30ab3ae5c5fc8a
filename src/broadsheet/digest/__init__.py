"""The email digest: subscriptions with double opt-in, signed links, and mail delivery."""
