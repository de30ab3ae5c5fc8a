"""Members and what they do: accounts, votes, comments, submissions, moderation, rate limits."""
