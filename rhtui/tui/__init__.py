"""The Textual dashboard: the app shell, its state, screens and widgets."""
