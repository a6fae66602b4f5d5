"""Fitted results, their summaries, plots and saving."""
