"""Tests of the test infrastructure in testing/."""
