"""Asterisk: FastAGI call routing (`agi.py`) and the AMI connection that follows calls."""
