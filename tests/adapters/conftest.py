"""The adapters' tests need their optional libraries (``pip install "darts-timesclip[pytorch-forecasting]"``): each
test file skips, naming the missing package, where they are not installed (``tests._extras.requires``)."""
