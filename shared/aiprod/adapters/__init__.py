"""Adapters: the only modules that touch Pub/Sub, Firestore, providers or the process."""
