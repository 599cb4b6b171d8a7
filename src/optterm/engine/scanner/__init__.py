"""The scanner: the F&O universe (universe), the field list (fields), the rule language
(grammar, presets), vectorised evaluation over columns × underlyings (frame, evaluate) and the
enter/leave tracker with hysteresis (tracker). docs/scanner.md describes the language."""
