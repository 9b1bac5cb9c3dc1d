"""Model bundles shipped with Cadenza (data only); see README.md here."""
