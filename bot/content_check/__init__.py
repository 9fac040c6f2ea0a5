"""The content the bot serves: every text and module the code needs (required), found and checked before a
patient sees it (check), and loaded as one (loader). It knows the features, so it sits above them."""
