"""Cocoon 2.0 off-chain code: chain plumbing, wire protocol, agents and the `cocoon` CLI."""
