/** The accounts service: lists customer accounts and their balances. */
package com.fintech.accounts;
