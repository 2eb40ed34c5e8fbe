"""`make bench`: reproducible figures of fintech-release's cost, each beside the baseline it is judged against."""
