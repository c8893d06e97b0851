from services.edge.main import main

main()
