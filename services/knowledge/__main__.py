from services.knowledge.main import main

main()
