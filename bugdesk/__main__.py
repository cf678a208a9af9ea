from bugdesk.cli import main

main()
