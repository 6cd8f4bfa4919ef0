"""Wire formats of the mesh and the chain, with no I/O: vouchers, Merkle sum trees, reports."""
