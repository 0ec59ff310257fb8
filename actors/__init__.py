"""Pykka actors: one per exchange, the hedge coordinator, monitor, closer and persistence writer."""
