"""The evaluation stage: metrics, the evaluation harness and the leaderboard."""
