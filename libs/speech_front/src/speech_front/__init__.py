"""What the two text-to-speech fronts (v1 stable, v2 canary) share.

Settings, the books and backend clients, content-addressed audio storage,
errors, single-flight and the Litestar routes live here once; each version's
package only supplies its :class:`~speech_front.strategy.SynthesisStrategy`,
its banner and its version string.
"""
