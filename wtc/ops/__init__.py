"""What a user does with the store: compare, the leaderboard, promote (against the baselines; the recovery
recommender), figures and models on demand, cleanup, predict, serve and the shared tracking server."""
