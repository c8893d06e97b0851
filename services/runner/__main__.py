from services.runner.main import main

main()
