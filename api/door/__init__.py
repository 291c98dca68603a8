"""The door scanner page (issue 30)."""
