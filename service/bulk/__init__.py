"""Population runs over a Bulk Data ``$export``: ``painpath bulk INPUT OUTPUT`` (see ``runner``)."""
