"""Runnable Beam jobs built on kdp_beam."""
