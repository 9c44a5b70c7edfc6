"""What to play or show next: the recommendation score, play history, and the radio draw."""
