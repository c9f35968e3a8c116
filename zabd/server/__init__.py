"""Twisted adapters only: the client, election and quorum ports, TLS on them, bind checks and signals."""
