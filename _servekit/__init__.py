"""Private serving kit: our HTTP servers (the staging server, both emulators, the tests' range server)
written once. RFC 9110/9112 and ASGI machinery only: it reads neither API document and imports none of
our packages, so the emulators stay independent of the clients."""
