"""Returns an application error."""


def main(args):
    return {"error": "something went wrong: " + str(args.get("why", "no reason"))}
