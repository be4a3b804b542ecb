"""Serial link to the door keypad controller: codec, reliable link, transport, device logic."""
