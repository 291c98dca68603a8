"""The storefront (issue 19): buyer pages served by the API process (docs/storefront.md)."""
