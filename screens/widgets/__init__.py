"""Parts of the stage screens: checked fields and step lists (`fields`), the key bar, and the
panels for protocols, credentials and servers."""
