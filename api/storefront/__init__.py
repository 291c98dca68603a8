"""The storefront (issue 19): buyer pages served by the API process (README "Storefront")."""
