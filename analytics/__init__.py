"""Listening analytics: IAB v2.3 downloads and listeners, CMCD QoE (see README.md)."""
