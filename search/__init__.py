"""optevo.search"""
