"""What tests share: helpers, factories, servers and stand-ins, in one package.

Test modules (``test_*.py``) import from here, never from each other or from a conftest;
fixtures stay in the ``conftest.py`` files where pytest finds them."""
