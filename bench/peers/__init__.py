"""The alternatives the bundle is measured against, each written the way its users set it up."""
