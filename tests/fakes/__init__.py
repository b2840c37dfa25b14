"""Local servers that speak each provider's real wire protocol, for the live adapters' tests.

The adapters reach them only through configuration (base URLs, an ADC credentials file, the
storage emulator host), so the code under test is the production code.
"""
