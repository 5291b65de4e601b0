"""`lab grade`: a class's predictions collected, checked, aggregated and reported."""
