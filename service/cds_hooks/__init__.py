"""cds_hooks"""
