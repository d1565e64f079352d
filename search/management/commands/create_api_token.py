from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from search.accounts.services import api_token_create


class Command(BaseCommand):
    help = (
        "Create a JSON API token for a user and print it. Only its hash is stored, so this is "
        "the one time it can be seen."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for")

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(options["username"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        if not user.is_active:
            raise CommandError(f"{user.get_username()} is inactive; their tokens would not work.")
        token, key = api_token_create(user=user, name=options["name"])
        self.stderr.write(
            f"Token {token.name!r} for {user.get_username()} (shown once; keep it secret):"
        )
        self.stdout.write(key)
