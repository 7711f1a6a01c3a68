"""The inputs: problems to check and the hypothesis strategies that draw them."""
