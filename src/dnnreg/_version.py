"""The package version, kept apart so that any layer can read it without importing the
package's public API (which sits above every wing)."""

__version__ = "0.1.0"
