"""How the TUI meets the terminal: Textual's Linux/macOS driver, made to give the terminal back
the moment the app quits (`quick_exit_driver`)."""

from __future__ import annotations

from typing import Any

__all__ = ["quick_exit_driver"]


def quick_exit_driver() -> type[Any]:
    """Textual's Linux/macOS driver with an input thread that ends the moment the app exits.

    Textual's own reads the terminal in 0.1 s waits, checks whether to stop between them, and
    on its way out waits another 0.1 s on nothing: every quit cost up to 0.2 s before the
    terminal was given back. Here the thread also waits on a pipe that the driver's exit event
    writes to, and does not linger at the end. The rest is Textual's reader as it is (its
    parser, decoder and message routing)."""
    import os
    import selectors
    import threading
    from codecs import getincrementaldecoder

    from textual._parser import ParseError
    from textual._xterm_parser import XTermParser
    from textual.drivers.linux_driver import LinuxDriver

    class WakingEvent(threading.Event):
        """A threading.Event whose `set` also makes `fd` readable (and `clear` drains it)."""

        def __init__(self) -> None:
            super().__init__()
            self.fd, self._writer = os.pipe()
            os.set_blocking(self.fd, False)

        def set(self) -> None:
            super().set()
            os.write(self._writer, b"x")

        def clear(self) -> None:
            super().clear()
            try:
                while os.read(self.fd, 64):
                    pass
            except BlockingIOError:
                pass

    class QuickExitDriver(LinuxDriver):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.exit_event = WakingEvent()

        def run_input_thread(self) -> None:
            exit_event = self.exit_event
            assert isinstance(exit_event, WakingEvent)
            selector = selectors.SelectSelector()
            selector.register(self.fileno, selectors.EVENT_READ)
            selector.register(exit_event.fd, selectors.EVENT_READ)
            fileno = self.fileno
            parser = XTermParser(self._debug)
            decode = getincrementaldecoder("utf-8")().decode

            def process(events: list[tuple[selectors.SelectorKey, int]]) -> None:
                for key, mask in events:
                    if key.fd != fileno or not mask & selectors.EVENT_READ:
                        continue
                    data = decode(os.read(fileno, 1024 * 4), final=False)
                    if not data:
                        break
                    for event in parser.feed(data):
                        self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)

            try:
                while not exit_event.is_set():
                    process(selector.select(0.1))
            finally:
                selector.close()
                try:
                    for _ in parser.feed(""):
                        pass
                except (EOFError, ParseError):
                    pass

    return QuickExitDriver
