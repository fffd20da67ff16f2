"""Writing the layout to disk: HDF5 (.nwb) or NWB Zarr (.nwb.zarr)."""
