"""Tests of midi."""
