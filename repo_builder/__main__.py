from repo_builder.cli.app import main

if __name__ == "__main__":
    main()
