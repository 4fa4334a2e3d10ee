"""optevo.simplify"""
