"""What the components and libraries share: file layout, options, registries, lineage, data checks."""
