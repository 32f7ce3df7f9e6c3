"""The batch road: bulk work through xAI's Batch API (no rate limit, a reduced price)."""
