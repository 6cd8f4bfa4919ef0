"""Chain plumbing: Tolk build, the emulator sandbox, and (later) network providers."""
