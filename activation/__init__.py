"""Activation: segments declared as rules over the profile and the scores, triggers, delivery to the channels."""
